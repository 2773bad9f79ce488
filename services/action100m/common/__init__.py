"""Code shared by the services: artifact store, video reader, gRPC bootstrap, release format."""
