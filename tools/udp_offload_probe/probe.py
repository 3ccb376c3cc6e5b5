# A UDP sender (single datagrams or UDP_SEGMENT sends) and a UDP_GRO receiver
# that counts reads and the datagrams in them; for run.sh.
import socket, struct, sys, time
SOL_UDP=17; UDP_SEGMENT=103; UDP_GRO=104
role=sys.argv[1]
if role=='recv':
    s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8<<20)
    s.setsockopt(SOL_UDP, UDP_GRO, 1)
    s.bind(('10.99.0.2', 5000)); s.settimeout(1.5)
    reads=0; dgrams=0; mx=0
    try:
        while True:
            data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(4))
            reads+=1; gso=0
            for l,t,d in anc:
                if l==SOL_UDP and t==UDP_GRO: gso=struct.unpack('i',d[:4])[0]
            n = 1 if gso==0 else (len(data)+gso-1)//gso
            dgrams+=n; mx=max(mx,n)
    except socket.timeout: pass
    print(f"  {sys.argv[2]}: reads={reads} datagrams={dgrams} max_per_read={mx}")
else:
    s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(('10.99.0.2',5000))
    if sys.argv[2]=='gso':
        for _ in range(50): s.sendmsg([b'x'*1200*40], [(SOL_UDP, UDP_SEGMENT, struct.pack('H',1200))])
    else:
        for _ in range(2000): s.send(b'x'*1200)
