#!/usr/bin/env python3
"""Deterministic release files for `make release`.

The same inputs give the same bytes on any machine, in any directory, at any
time: entries sorted by name, every mtime set to SOURCE_DATE_EPOCH, owner
0:0 with no names, modes 0755 (executables) or 0644, no directory entries,
and no timestamp or file name in the gzip header. Only Python's standard
library (tarfile, gzip, zipfile, hashlib, json), so nothing to vendor.

  release_files.py tar OUT.tar.gz NAME=PATH...   static CLI + LICENSE + README
  release_files.py zip OUT.zip NAME=PATH...      a Lambda zip (bootstrap only)
  release_files.py sbom OUT.cdx.json BOM...      one CycloneDX SBOM from several
  release_files.py sums DIR                      DIR/SHA256SUMS over every other file

An entry is 0755 when its source file is executable (git records that),
0644 otherwise.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import zipfile


def epoch():
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not value.isdigit():
        sys.exit(f"release_files: SOURCE_DATE_EPOCH={value!r} is not a number of seconds; "
                 "set it to the commit's time (git log -1 --format=%ct)")
    # A zip stores DOS time, which starts in 1980.
    return max(int(value), 315532800)


def entries(specs):
    """NAME=PATH pairs, sorted by NAME, with the file's bytes and mode."""
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or "/" in name:
            sys.exit(f"release_files: {spec!r} is not NAME=PATH with a plain file name")
        with open(path, "rb") as f:
            data = f.read()
        executable = os.stat(path).st_mode & 0o100 != 0
        out.append((name, data, 0o755 if executable else 0o644))
    return sorted(out)


def write_tar(out, specs):
    mtime = epoch()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in entries(specs):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    with open(out, "wb") as f:
        # filename="" and a fixed mtime: nothing of this machine in the header.
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=mtime, compresslevel=9) as gz:
            gz.write(raw.getvalue())


def write_zip(out, specs):
    import time

    stamp = time.gmtime(epoch())[:6]
    with zipfile.ZipFile(out, "w") as z:
        for name, data, mode in entries(specs):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so Lambda reads the mode bits
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, data, compresslevel=9)


def merge_sbom(out, boms):
    """One CycloneDX document for several binaries: the union of their
    components and dependencies, sorted, with the first one's metadata.
    Each binary's bom-refs are its own indices ("0", "1", ...), so every
    component is keyed, and every reference rewritten, by its purl."""
    merged, components, dependencies = None, {}, {}
    for path in boms:
        with open(path) as f:
            doc = json.load(f)
        refs = {}
        for c in doc.get("components", []) + [doc.get("metadata", {}).get("component", {})]:
            if c:
                refs[c.get("bom-ref")] = c.get("purl") or f"{c.get('name')}@{c.get('version')}"
        for c in doc.get("components", []):
            key = refs[c.get("bom-ref")]
            components.setdefault(key, dict(c, **{"bom-ref": key}))
        for d in doc.get("dependencies", []):
            have = dependencies.setdefault(refs.get(d["ref"], d["ref"]), set())
            have.update(refs.get(r, r) for r in d.get("dependsOn", []))
        if merged is None:
            merged = dict(doc)
            root = doc.get("metadata", {}).get("component")
            if root:
                merged["metadata"] = dict(doc["metadata"], component=dict(root, **{"bom-ref": refs[root.get("bom-ref")]}))
    merged.pop("serialNumber", None)  # random per run: it would break reproducibility
    merged["components"] = [components[k] for k in sorted(components)]
    merged["dependencies"] = [
        dict({"ref": ref}, **({"dependsOn": sorted(deps)} if deps else {}))
        for ref, deps in sorted(dependencies.items())
    ]
    with open(out, "w") as f:
        json.dump(merged, f, indent=2, sort_keys=True)
        f.write("\n")


def write_sums(directory):
    lines = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name == "SHA256SUMS" or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            lines.append(f"{hashlib.sha256(f.read()).hexdigest()}  {name}\n")
    with open(os.path.join(directory, "SHA256SUMS"), "w") as f:
        f.writelines(lines)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    command, target, rest = argv[1], argv[2], argv[3:]
    if command == "tar":
        write_tar(target, rest)
    elif command == "zip":
        write_zip(target, rest)
    elif command == "sbom":
        merge_sbom(target, rest)
    elif command == "sums":
        write_sums(target)
    else:
        sys.exit(f"release_files: unknown command {command!r}; expected tar, zip, sbom or sums")


if __name__ == "__main__":
    main(sys.argv)
