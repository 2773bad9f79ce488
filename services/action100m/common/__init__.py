"""Code shared by the four services: artifact store, video reader, gRPC bootstrap, release format."""
