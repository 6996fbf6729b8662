"""Map contents as Prometheus metrics: a config of metrics, each read from a map at
scrape time, written as the Prometheus text format by bpfmap (export.exposition; the
OpenMetrics format through prometheus-client) over HTTP /metrics, as one exposition, or as
a node_exporter textfile.

A metric names a map (pin, ``id:N`` or ``name:NAME``), how to read it (a layout, a C
header, else the map's BTF, else 4/8-byte integers), which value field is the number
and which fields are labels (by name: no sizes, no padding).  Histograms come from
either shape ``bpfmap hist`` knows: slots in the value (an array of counts per entry)
or the slot in the key.  Maps are opened read-only (BPF_F_RDONLY) at every scrape, so a
map that disappears makes its metric absent (and counts an error) and a new map under
the same pin or name is picked up by the next scrape.

Needs ``prometheus-client`` and ``PyYAML``, and ``google-re2`` for a label ``regexp``
(``pip install 'bpfmap[export]'``).

Public: the names of ``__all__``.  They load with the package, not lazily as other
packages' names do: ``serve`` and ``exposition`` are also the names of its modules, and
only binding the functions when the package is imported keeps them the functions."""

from .collector import Exporter, describe_error
from .config import ConfigError, Metric, parse_config, read_config
from .serve import check_textfile, exposition, parse_listen, scrape, serve, write_textfile

__all__ = [
    "ConfigError",
    "Exporter",
    "Metric",
    "check_textfile",
    "describe_error",
    "exposition",
    "parse_config",
    "parse_listen",
    "read_config",
    "scrape",
    "serve",
    "write_textfile",
]
