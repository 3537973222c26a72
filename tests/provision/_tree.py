"""A fingerprint of a file tree: paths, types, permissions, owners, contents, mtimes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p), st.st_uid, st.st_gid)
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777, st.st_uid, st.st_gid)
            else:
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                mode = st.st_mode & 0o7777
                out[rel] = ("file", mode, st.st_uid, st.st_gid, digest, st.st_mtime_ns)
    return out


def tree_digest(root: Path) -> str:
    return hashlib.sha256(repr(sorted(tree_state(root).items())).encode()).hexdigest()
