// Go net/http on the inherited fd 3 (LISTEN_FDS); SLOW_START seconds between FileListener and Serve.
package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		panic(err)
	}
	slow, _ := strconv.ParseFloat(os.Getenv("SLOW_START"), 64)
	time.Sleep(time.Duration(slow * float64(time.Second)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		<-c
		srv.Shutdown(context.Background())
	}()
	srv.Serve(l)
}
