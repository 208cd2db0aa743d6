"""bench/benchstat.py — the figures of the bench scripts (bench/*.sh): the
median of a figure's runs, its spread (the machine's noise) and ratios.
The scripts' python parts import it (sys.path[0] = bench/)."""
import statistics
import sys


def med(v):
    """The median of the runs v, None without runs."""
    return statistics.median(v) if v else None


def spread(v):
    """(max - min) / median of the runs v, in %; 0 without runs or median."""
    m = med(v)
    return (max(v) - min(v)) / m * 100 if m else 0


def cell(v, fmt="%13.1f", width=22):
    """'MEDIAN ±SPREAD%' of the runs v (MEDIAN in fmt), or '-' in width."""
    if not v:
        return "%*s" % (width, "-")
    return (fmt + " ±%5.1f%%") % (med(v), spread(v))


def ratio(a, b):
    """a / b in 8 columns, '-' when a figure is missing."""
    return "%8.3f" % (a / b) if a is not None and b else "%8s" % "-"


def all_there(missing):
    """Ends the script with status 1 and 'FAIL: no figure for: ...' on
    stderr when the list of missing figures is not empty."""
    if missing:
        print("FAIL: no figure for: " + ", ".join(missing), file=sys.stderr)
        sys.exit(1)
