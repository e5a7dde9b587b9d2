"""Generated protobuf/gRPC code (do not edit; run `make proto`)."""
