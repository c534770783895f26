from edgevt.cli import main

main()
