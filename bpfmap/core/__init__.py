"""The bytes core: maps and programs reached through file descriptors, one concern per module.

- ``fd``: owning a file descriptor (FdOwner).
- ``values``: how values sit in kernel buffers (per-CPU slots and their stride): the
  only place that knows it.
- ``spec``: MapSpec, the description of a map, its checks and its creation.
- ``info``: what the kernel says about maps (MapInfo), listing, ids and names.
- ``batch``: batch operations over any object with a map's shape (MapCore), with the
  per-element fallback, and the key walk.
- ``threads``: the read-ahead thread of dumps and the writer thread of bulk loads.
- ``program``: loaded programs (Program).

``core/maps.py`` (the Map) puts them together.
"""
