// gorilla/websocket (the tutorial's library) as an interop peer; same checklist and
// JSON lines as python/peer.py.
//
//	peer client -url ws://127.0.0.1:P/websocket
//	peer server -port P
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

var peer = "go-gorilla-websocket 1.5.0"
var failures = 0

func report(check string, ok bool, detail string) {
	if !ok {
		failures++
	}
	if len(detail) > 300 {
		detail = detail[:300]
	}
	b, _ := json.Marshal(map[string]interface{}{"peer": peer, "check": check, "ok": ok, "detail": detail})
	fmt.Println(string(b))
}

func payload(kind string, n int) []byte {
	if kind == "text" {
		unit := "κόσμε-abc "
		var sb strings.Builder
		for sb.Len() < n+len(unit) {
			sb.WriteString(unit)
		}
		s := []byte(sb.String())[:n]
		// Cut back to a code point boundary.
		for len(s) > 0 && !isValidEnd(s) {
			s = s[:len(s)-1]
		}
		return s
	}
	b := make([]byte, n)
	for i := 0; i < n && i < 1<<20; i++ {
		b[i] = byte(i*31 + 7)
	}
	return b
}

func isValidEnd(s []byte) bool {
	return strings.ToValidUTF8(string(s), "\uFFFD") == string(s)
}

func client(url string) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, WriteBufferSize: 4096}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		report("connect", false, err.Error())
		return
	}
	defer c.Close()
	c.SetReadLimit(64 << 20)
	read := func() (int, []byte, error) {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		return c.ReadMessage()
	}
	for _, kind := range []string{"text", "binary"} {
		mt := websocket.TextMessage
		if kind == "binary" {
			mt = websocket.BinaryMessage
		}
		for _, n := range []int{0, 5, 64 * 1024, 16 << 20} {
			data := payload(kind, n)
			check := fmt.Sprintf("echo %s %dB", kind, n)
			if err := c.WriteMessage(mt, data); err != nil {
				report(check, false, err.Error())
				continue
			}
			t, echo, err := read()
			_, dots, err2 := read()
			report(check, err == nil && err2 == nil && t == mt && bytes.Equal(echo, data) && string(dots) == "..........",
				fmt.Sprintf("err=%v/%v dots=%q", err, err2, dots))
		}
		// Fragmented: NextWriter emits a frame per 4 KiB buffer.
		check := "echo fragmented " + kind
		data := payload(kind, 70000)
		w, err := c.NextWriter(mt)
		if err == nil {
			for i := 0; i < len(data); i += 1000 {
				end := i + 1000
				if end > len(data) {
					end = len(data)
				}
				w.Write(data[i:end])
			}
			err = w.Close()
		}
		_, echo, err2 := read()
		read()
		report(check, err == nil && err2 == nil && bytes.Equal(echo, data), fmt.Sprintf("%d back, err=%v/%v", len(echo), err, err2))
	}
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	pings := 0
	c.SetPingHandler(func(s string) error {
		pings++
		return c.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
	})
	c.WriteControl(websocket.PingMessage, []byte("go-ping"), time.Now().Add(time.Second))
	// Read (handlers run inside reads) while idling through the server's heartbeat.
	msgs := make(chan []byte, 4)
	go func() {
		for {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, m, err := c.ReadMessage()
			if err != nil {
				close(msgs)
				return
			}
			msgs <- m
		}
	}()
	select {
	case s := <-pong:
		report("our ping answered by the server", s == "go-ping", s)
	case <-time.After(5 * time.Second):
		report("our ping answered by the server", false, "no pong")
	}
	time.Sleep(1500 * time.Millisecond)
	c.WriteMessage(websocket.TextMessage, []byte("still here"))
	select {
	case m := <-msgs:
		<-msgs
		report("server heartbeat pings answered (idle 1.5 s)", string(m) == "still here", fmt.Sprintf("%d pings seen", pings))
	case <-time.After(5 * time.Second):
		report("server heartbeat pings answered (idle 1.5 s)", false, "no echo")
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second))
	select {
	case _, open := <-msgs:
		report("clean close 1000, server replied", !open, "")
	case <-time.After(5 * time.Second):
		report("clean close 1000, server replied", false, "no close reply")
	}
}

var upgrader = websocket.Upgrader{
	Subprotocols:    []string{"chat.v1"},
	CheckOrigin:     func(r *http.Request) bool { return true },
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
}

func serve(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	if strings.HasPrefix(r.URL.Path, "/close") {
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "custom reason"), time.Now().Add(time.Second))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		c.ReadMessage()
		return
	}
	if strings.HasPrefix(r.URL.Path, "/ping") {
		got := make(chan bool, 1)
		c.SetPongHandler(func(s string) error { got <- s == "hello-ping"; return nil })
		c.WriteControl(websocket.PingMessage, []byte("hello-ping"), time.Now().Add(time.Second))
		go func() {
			ok := false
			select {
			case ok = <-got:
			case <-time.After(3 * time.Second):
			}
			msg := "pong-missing"
			if ok {
				msg = "pong-ok"
			}
			c.WriteMessage(websocket.TextMessage, []byte(msg))
		}()
	}
	for {
		mt, r, err := c.NextReader()
		if err != nil {
			return
		}
		w, err := c.NextWriter(mt)
		if err != nil {
			return
		}
		buf := new(bytes.Buffer)
		buf.ReadFrom(r)
		w.Write(buf.Bytes())
		w.Close()
	}
}

func main() {
	url := flag.String("url", "", "")
	port := flag.Int("port", 0, "")
	flag.CommandLine.Parse(os.Args[2:])
	switch os.Args[1] {
	case "client":
		client(*url)
		if failures > 0 {
			os.Exit(1)
		}
	case "server":
		fmt.Printf("{\"peer\": %q, \"listening\": %d}\n", peer, *port)
		http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", *port), http.HandlerFunc(serve))
	}
}
