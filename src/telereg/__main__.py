from telereg.cli import main

main()
