"""The control plane: configuration, venue connections, strategy lifecycle, snapshots."""
