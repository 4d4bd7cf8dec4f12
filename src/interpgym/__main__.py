from interpgym.cli import main

main()
