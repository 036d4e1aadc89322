"""segtool's command line: one small module per command group, mounted in `segtool.cli.main`."""
