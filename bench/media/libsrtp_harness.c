/*
 * Times libsrtp's srtp_protect + srtp_unprotect for one profile and
 * payload size, and optionally checks that libsrtp accepts packets that
 * internal/media/srtp protected (interop). Built and run by run.sh.
 *
 * usage: libsrtp_harness PROFILE PAYLOAD N [VECTORS]
 *   PROFILE: AES1_HS32 AES1_HS80 AES3_HS32 AES3_HS80
 * prints: "<packets per second>" and, with VECTORS, "interop ok <n>".
 */
#include <srtp2/srtp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int policy(const char *name, srtp_crypto_policy_t *p, int *keylen) {
	if (!strcmp(name, "AES1_HS80")) { srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(p); *keylen = 16; }
	else if (!strcmp(name, "AES1_HS32")) { srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(p); *keylen = 16; }
	else if (!strcmp(name, "AES3_HS80")) { srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(p); *keylen = 32; }
	else if (!strcmp(name, "AES3_HS32")) { srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(p); *keylen = 32; }
	else return -1;
	return 0;
}

static srtp_t session(const char *name, int inbound) {
	/* The same key and salt as bench/media/srtpbench: key[i] = i, salt[i] = 0xA0 + i. */
	static unsigned char key[46];
	srtp_policy_t pol;
	int keylen, i;
	srtp_t s;
	memset(&pol, 0, sizeof pol);
	if (policy(name, &pol.rtp, &keylen) != 0) { fprintf(stderr, "unknown profile %s\n", name); exit(2); }
	pol.rtcp = pol.rtp;
	for (i = 0; i < keylen; i++) key[i] = (unsigned char)i;
	for (i = 0; i < 14; i++) key[keylen + i] = (unsigned char)(0xA0 + i);
	pol.key = key;
	pol.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
	pol.window_size = 1024;
	if (srtp_create(&s, &pol) != srtp_err_status_ok) { fprintf(stderr, "srtp_create failed\n"); exit(1); }
	return s;
}

static int readn(FILE *f, unsigned char *b, int *n) {
	unsigned char l[2];
	if (fread(l, 1, 2, f) != 2) return 0;
	*n = l[0] << 8 | l[1];
	return fread(b, 1, *n, f) == (size_t)*n;
}

int main(int argc, char **argv) {
	unsigned char pkt[2048], plain[2048];
	struct timespec t0, t1;
	int payload, n, i, len;
	srtp_t tx, rx;
	if (argc < 4) { fprintf(stderr, "usage: %s PROFILE PAYLOAD N [VECTORS]\n", argv[0]); return 2; }
	payload = atoi(argv[2]);
	n = atoi(argv[3]);
	if (payload < 0 || payload > 1400 || n <= 0) { fprintf(stderr, "bad payload or count\n"); return 2; }
	if (srtp_init() != srtp_err_status_ok) { fprintf(stderr, "srtp_init failed\n"); return 1; }

	if (argc > 4) {
		FILE *f = fopen(argv[4], "rb");
		int m = 0, pl;
		if (!f) { perror(argv[4]); return 1; }
		rx = session(argv[1], 1);
		while (readn(f, plain, &pl) && readn(f, pkt, &len)) {
			if (srtp_unprotect(rx, pkt, &len) != srtp_err_status_ok || len != pl || memcmp(pkt, plain, pl)) {
				printf("interop FAILED at packet %d\n", m);
				return 1;
			}
			m++;
		}
		fclose(f);
		srtp_dealloc(rx);
		printf("interop ok %d\n", m);
	}

	tx = session(argv[1], 0);
	rx = session(argv[1], 1);
	memset(plain, 0xAB, sizeof plain);
	plain[0] = 0x80; plain[1] = 0;
	plain[8] = 0xCA; plain[9] = 0xFE; plain[10] = 0xBA; plain[11] = 0xBE;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		memcpy(pkt, plain, 12 + payload);
		pkt[2] = (unsigned char)(i >> 8); pkt[3] = (unsigned char)i;
		pkt[4] = (unsigned char)(i >> 24); pkt[5] = (unsigned char)(i >> 16);
		pkt[6] = (unsigned char)(i >> 8); pkt[7] = (unsigned char)i;
		len = 12 + payload;
		if (srtp_protect(tx, pkt, &len) != srtp_err_status_ok) { fprintf(stderr, "protect failed at %d\n", i); return 1; }
		if (srtp_unprotect(rx, pkt, &len) != srtp_err_status_ok) { fprintf(stderr, "unprotect failed at %d\n", i); return 1; }
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.0f\n", n / ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9));
	srtp_dealloc(tx);
	srtp_dealloc(rx);
	return 0;
}
