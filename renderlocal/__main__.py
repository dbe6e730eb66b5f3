from renderlocal.cli.main import main

main()
