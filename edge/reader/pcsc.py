"""PC/SC readers through pyscard (public face of ``_pcsc``)."""

from ._pcsc import PcscConnection, PcscReaders

__all__ = ["PcscConnection", "PcscReaders"]
