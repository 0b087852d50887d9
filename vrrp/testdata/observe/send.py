# send.py VERSION VRID PRIO VIPS(comma) COUNT INTERVAL_S [TTL]: send adverts from 192.0.2.2
import socket, struct, sys, time
ver, vrid, prio = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
vips = [socket.inet_aton(a) for a in sys.argv[4].split(',') if a]
count, ival = int(sys.argv[5]), float(sys.argv[6])
ttl = int(sys.argv[7]) if len(sys.argv) > 7 else 255
src, dst = socket.inet_aton('192.0.2.2'), socket.inet_aton('224.0.0.18')
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s > 0xffff: s = (s >> 16) + (s & 0xffff)
    return (~s) & 0xffff
def pkt():
    if ver == 2:
        h = struct.pack('!BBBBBBH', 0x21, vrid, prio, len(vips), 0, int(ival), 0) + b''.join(vips) + b'\0'*8
        c = csum(h)
    else:
        h = struct.pack('!BBBBHH', 0x31, vrid, prio, len(vips), int(round(ival*100)), 0) + b''.join(vips)
        c = csum(src + dst + struct.pack('!BBH', 0, 112, len(h)) + h)
    return h[:6] + struct.pack('!H', c) + h[8:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, src)
for i in range(count):
    s.sendto(pkt(), ('224.0.0.18', 0))
    print('%.3f sent prio %d' % (time.time(), prio), flush=True)
    if i < count - 1: time.sleep(ival)
