"""One module per ``lookaside`` subcommand (see :mod:`lookaside.cli`)."""
