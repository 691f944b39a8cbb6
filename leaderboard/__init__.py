"""The leaderboard: submitted results and the static-site builder (installed as ``vgbench_leaderboard``)."""
