"""nfcpy readers (public face of ``_nfc``): RC-S380-class USB readers, nfcpy's udp driver."""

from ._nfc import NfcConnection, NfcReader, atr_for_type_b

__all__ = ["NfcConnection", "NfcReader", "atr_for_type_b"]
