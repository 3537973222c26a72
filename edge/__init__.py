"""The ambulance device: card reading (reader, jpki), the case flow, the UI."""
