/*
 * A TLS 1.2 client that does what node's own client cannot: completes a handshake with one certificate,
 * renegotiates presenting another, then sends one HTTP request. The attack on a server that lets a
 * renegotiation change who the caller is. OpenSSL 3 is loaded at run time (libssl.so.3), so no headers are
 * needed; test/support/tls-renegotiate.ts builds and runs it.
 *
 * usage: tls-renegotiate HOST PORT CERT1 KEY1 CERT2 KEY2 METHOD PATH
 * prints one line and exits: "handshake-refused <why>" 3, "renegotiation-refused <why>" 4,
 * "answer <HTTP status line>" 0, "no-answer <why>" 5; 2 when it cannot run at all.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef void *(*method_fn)(void);
typedef void *(*ctx_new_fn)(void *);
typedef long (*ctx_ctrl_fn)(void *, int, long, void *);
typedef int (*ctx_file_fn)(void *, const char *);
typedef int (*ctx_key_fn)(void *, const char *, int);
typedef void *(*ssl_new_fn)(void *);
typedef int (*ssl_int_fn)(void *);
typedef int (*ssl_fd_fn)(void *, int);
typedef int (*ssl_file_fn)(void *, const char *, int);
typedef int (*ssl_io_fn)(void *, void *, int);
typedef unsigned long (*err_get_fn)(void);
typedef void (*err_str_fn)(unsigned long, char *, size_t);

static void *lib;

static void *sym(const char *name) {
  void *f = dlsym(lib, name);
  if (!f) {
    printf("cannot-run %s not found in libssl.so.3\n", name);
    exit(2);
  }
  return f;
}

static const char *why(void) {
  static char buf[256];
  unsigned long e = ((err_get_fn)sym("ERR_get_error"))();
  if (e == 0) return "no OpenSSL error (the peer closed the connection)";
  ((err_str_fn)sym("ERR_error_string_n"))(e, buf, sizeof buf);
  return buf;
}

static int dial(const char *host, const char *port) {
  struct addrinfo hints = {0}, *res;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &res) != 0) return -1;
  int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 9) {
    printf("cannot-run usage: HOST PORT CERT1 KEY1 CERT2 KEY2 METHOD PATH\n");
    return 2;
  }
  lib = dlopen("libssl.so.3", RTLD_NOW);
  if (!lib) {
    printf("cannot-run %s\n", dlerror());
    return 2;
  }
  const int PEM = 1, SET_MAX_PROTO_VERSION = 124, TLS1_2 = 0x0303;
  void *ctx = ((ctx_new_fn)sym("SSL_CTX_new"))(((method_fn)sym("TLS_client_method"))());
  ((ctx_ctrl_fn)sym("SSL_CTX_ctrl"))(ctx, SET_MAX_PROTO_VERSION, TLS1_2, NULL);
  if (((ctx_file_fn)sym("SSL_CTX_use_certificate_chain_file"))(ctx, argv[3]) != 1 ||
      ((ctx_key_fn)sym("SSL_CTX_use_PrivateKey_file"))(ctx, argv[4], PEM) != 1) {
    printf("cannot-run the first certificate or key: %s\n", why());
    return 2;
  }
  int fd = dial(argv[1], argv[2]);
  if (fd < 0) {
    printf("cannot-run cannot connect to %s:%s\n", argv[1], argv[2]);
    return 2;
  }
  void *ssl = ((ssl_new_fn)sym("SSL_new"))(ctx);
  ((ssl_fd_fn)sym("SSL_set_fd"))(ssl, fd);
  if (((ssl_int_fn)sym("SSL_connect"))(ssl) != 1) {
    printf("handshake-refused %s\n", why());
    return 3;
  }
  /* The second identity, for this connection only, then a renegotiation that presents it. */
  if (((ssl_file_fn)sym("SSL_use_certificate_file"))(ssl, argv[5], PEM) != 1 ||
      ((ssl_file_fn)sym("SSL_use_PrivateKey_file"))(ssl, argv[6], PEM) != 1) {
    printf("cannot-run the second certificate or key: %s\n", why());
    return 2;
  }
  if (((ssl_int_fn)sym("SSL_renegotiate"))(ssl) != 1 || ((ssl_int_fn)sym("SSL_do_handshake"))(ssl) != 1) {
    printf("renegotiation-refused %s\n", why());
    return 4;
  }
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: %s\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n"
                   "connection: close\r\n\r\n",
                   argv[7], argv[8], argv[1]);
  if (((ssl_io_fn)sym("SSL_write"))(ssl, req, n) != n) {
    printf("no-answer the request was not sent: %s\n", why());
    return 5;
  }
  char answer[4096];
  int got = 0, r;
  while (got < (int)sizeof answer - 1 && (r = ((ssl_io_fn)sym("SSL_read"))(ssl, answer + got, (int)sizeof answer - 1 - got)) > 0)
    got += r;
  answer[got] = 0;
  char *eol = strstr(answer, "\r\n");
  if (got == 0 || !eol) {
    printf("no-answer %s\n", got == 0 ? why() : "not HTTP");
    return 5;
  }
  *eol = 0;
  printf("answer %s\n", answer);
  return 0;
}
