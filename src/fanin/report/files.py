"""Writing a report or a figure without losing a file: a temporary file beside the target, renamed
into place.

:func:`atomic_write` writes ``data`` to a new file in the target's own directory and renames it
over the target with :func:`os.replace`, which is atomic on POSIX and Windows when both names are
on one file system (the same directory guarantees that). A reader sees the old file or the new one,
never a half-written one; a failed write (disk full, Ctrl-C, a renderer that raises) leaves the old
file as it was and no temporary file behind.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "report.md"
>>> atomic_write(target, "# old\\n") == target
True
>>> def broken():
...     yield "half"
...     raise RuntimeError("renderer failed")
>>> try:
...     atomic_write(target, broken())
... except RuntimeError:
...     pass
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('# old\\n', ['report.md'])
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write"]


def _mode_for(path: Path) -> int:
    """The permissions the file gets: the old file's, else what ``open()`` would give (0o666 & ~umask)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new temporary file's path beside ``path`` (same suffix, so a writer that reads the
    format from it still can); on a clean exit it is renamed over ``path``, on an error removed.

    For writers that take a path (``fig.savefig``); :func:`atomic_write` for data in hand.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write(path: str | os.PathLike[str], data: str | bytes | Iterable[str | bytes]) -> Path:
    """Write ``data`` (text as UTF-8, bytes, or an iterable of chunks) to ``path`` through a
    temporary file in the same directory renamed into place; return ``path`` as a :class:`Path`.

    On any failure the temporary file is removed and ``path`` is untouched; the error propagates.
    """
    chunks = [data] if isinstance(data, (str, bytes)) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)
