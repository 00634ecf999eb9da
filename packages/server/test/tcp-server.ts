import { once } from "node:events";
import { createServer, type Socket } from "node:net";

export interface TcpServer {
  port: number;
  /** Stops listening and cuts every open connection, as a server that went away. */
  close(): Promise<void>;
}

/** A TCP server (on a free port unless given one); `serve` decides what each connection gets. */
export async function tcpServer(serve: (socket: Socket) => void, port = 0): Promise<TcpServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    serve(socket);
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A port nothing listens on: a connection to it is refused. */
export async function closedPort(): Promise<number> {
  const server = await tcpServer(() => {});
  await server.close();
  return server.port;
}
