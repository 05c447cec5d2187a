from eprescrire.cli import main

main()
