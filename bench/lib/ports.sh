# Sourced by the benchmarks: free_port [udp] prints a loopback port that is
# free now (TCP unless udp is given), for a server the script starts next.
free_port() {
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1:] == ["udp"] else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "$@"
}
