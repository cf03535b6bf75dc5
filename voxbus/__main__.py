from voxbus.cli import main

raise SystemExit(main())
