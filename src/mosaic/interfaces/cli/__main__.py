from mosaic.interfaces.cli.app import main

main()
