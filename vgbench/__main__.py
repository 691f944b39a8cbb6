from vgbench.cli.main import main

main()
