// The floor under any Go auth proxy (issue 12): net/http/httputil.ReverseProxy plus, on every
// request, the cheapest sealed-cookie check such a proxy can do (HMAC-SHA256 over the sealed
// value, AES-256-GCM open, JSON decode of the claims, expiry) and three identity headers.
// Stdlib only, so it builds offline: GOFLAGS=-mod=mod GOPROXY=off go build.
//
//	gofloor -listen 127.0.0.1:PORT -upstream http://127.0.0.1:PORT
//
// It prints "COOKIE <value>" (a valid cookie for user "demo") once it listens, then serves.
package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"
)

type claims struct {
	Sub    string   `json:"sub"`
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	Exp    int64    `json:"exp"`
}

type sealer struct {
	mac  []byte
	aead cipher.AEAD
}

var b64 = base64.RawURLEncoding

func newSealer() *sealer {
	key := make([]byte, 32)
	mac := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		log.Fatal(err)
	}
	if _, err := rand.Read(mac); err != nil {
		log.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		log.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		log.Fatal(err)
	}
	return &sealer{mac: mac, aead: aead}
}

// seal: b64(nonce | AES-GCM(json)) "." b64(HMAC-SHA256(first part)), like a signed, encrypted
// session cookie (oauth2-proxy's is of the same kind).
func (s *sealer) seal(c claims) string {
	plain, _ := json.Marshal(c)
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		log.Fatal(err)
	}
	body := b64.EncodeToString(s.aead.Seal(nonce, nonce, plain, nil))
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(body))
	return body + "." + b64.EncodeToString(m.Sum(nil))
}

func (s *sealer) open(value string) (*claims, bool) {
	body, sig, ok := strings.Cut(value, ".")
	if !ok {
		return nil, false
	}
	want, err := b64.DecodeString(sig)
	if err != nil {
		return nil, false
	}
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(body))
	if !hmac.Equal(m.Sum(nil), want) {
		return nil, false
	}
	raw, err := b64.DecodeString(body)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return nil, false
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return nil, false
	}
	var c claims
	if json.Unmarshal(plain, &c) != nil || c.Exp < time.Now().Unix() {
		return nil, false
	}
	return &c, true
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:3000", "upstream base URL")
	procs := flag.Int("procs", 1, "GOMAXPROCS (the bench pins every server to one CPU)")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	s := newSealer()
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
	proxy.ErrorLog = log.New(os.Stderr, "", 0)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie("gate")
		if err != nil {
			http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		c, ok := s.open(cookie.Value)
		if !ok {
			http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		r.Header.Del("Cookie") // the app never sees the session
		r.Header.Set("X-Forwarded-User", c.Sub)
		r.Header.Set("X-Forwarded-Email", c.Email)
		r.Header.Set("X-Forwarded-Groups", strings.Join(c.Groups, ","))
		proxy.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	cookie := s.seal(claims{
		Sub: "demo", Email: "demo@example.com", Groups: []string{"staff"},
		Exp: time.Now().Add(12 * time.Hour).Unix(),
	})
	fmt.Printf("COOKIE %s\n", cookie)
	os.Stdout.Sync()
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 15 * time.Second}
	log.Fatal(server.Serve(ln))
}
