from chaos_tui.cli import main

raise SystemExit(main())
