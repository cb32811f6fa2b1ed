"""The stream topology and the faust-streaming entry point (`faust -A streams.app worker`)."""
