from netcron.cli import main

main()
