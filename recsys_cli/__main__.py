from recsys_cli.main import main

raise SystemExit(main())
