"""The kinds of replicate matrices a ground truth can carry, each giving a ceiling of its own (``vgbench.scoring``)."""

#: Replicates that come as (half A, half B) pairs of one split of the data each.
SPLIT_HALF = "split_half_pairs"
#: Replicates that are independently trained runs (own seed, data order, re-split) whose mean is the matrix.
TRAINING_RUNS = "training_runs"
#: The same task rebuilt with filtered training data: each such matrix against the ground truth.
FILTERED_DATA = "filtered_data"
#: The same task and value set under another subject model: each other model's matrix against the ground truth.
CROSS_MODEL = "cross_model"
#: Every kind of replicate a ground truth can carry (``replicate_kind`` or a key of ``replicate_sets``).
CEILING_KINDS = (SPLIT_HALF, TRAINING_RUNS, FILTERED_DATA, CROSS_MODEL)
