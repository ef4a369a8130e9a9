"""``python -m fanin``: the same as the ``fanin`` command."""

from fanin.cli.main import main

if __name__ == "__main__":
    main()
