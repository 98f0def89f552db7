"""Atomic writes: every output file appears whole or not at all, and a failed run leaves the
files it would have replaced as they were. Standard library only, so that any layer may write
(the plan's tables, reports, charts, the fitted calibration)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(directory: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write every file to a temporary name first, then rename each into place.

    Nothing half-written is ever visible, and a run that fails leaves the previous results in
    `directory` as they were: if a write fails, the temporaries are removed; if a rename
    fails (or Ctrl-C comes) after others were done, those are undone from hard links kept of
    the files they replaced, so no mix of old and new files is left."""
    directory.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path]] = []
    try:
        for name, text in files.items():
            if (directory / name).is_dir():
                raise IsADirectoryError(21, "Is a directory", str(directory / name))
            fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
            staged.append((Path(temporary), directory / name))
            os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; results are for sharing
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8") if isinstance(text, str) else text)
                handle.flush()
                os.fsync(handle.fileno())
        _rename_all_or_none(staged)
    finally:
        for written, _ in staged:
            written.unlink(missing_ok=True)
    return [final for _, final in staged]


def _rename_all_or_none(staged: list[tuple[Path, Path]]) -> None:
    """Rename each temporary onto its final name; on any failure put back what was there."""
    done: list[tuple[Path, Path | None]] = []  # final name, hard link of the file it replaced
    try:
        for written, final in staged:
            kept = _hard_link(final)
            done.append((final, kept))
            os.replace(written, final)
    except BaseException:
        for final, kept in reversed(done):
            if kept is not None:
                os.replace(kept, final)
            elif final.exists():
                final.unlink()
        raise
    finally:
        for _, kept in done:
            if kept is not None:
                kept.unlink(missing_ok=True)


def _hard_link(path: Path) -> Path | None:
    """A second name for `path` beside it (None when there is no such file), so that it
    survives being replaced; a copy where the file system has no hard links."""
    if not path.exists():
        return None
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent)
    os.close(fd)
    os.unlink(name)
    try:
        os.link(path, name)
    except OSError:
        import shutil

        shutil.copy2(path, name)
    return Path(name)
