"""gRPC stubs generated from protos/action100m/v1 by `make protos`; do not edit."""
