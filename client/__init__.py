"""The `shopimage` command: what a seller runs on a laptop. It talks to the service over HTTP only
(never imports api/, worker/ or shared/)."""
