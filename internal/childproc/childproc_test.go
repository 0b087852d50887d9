package childproc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// childEnv makes the test binary the child of these tests (testChild).
const childEnv = "CHILDPROC_TEST_CHILD"

func TestMain(m *testing.M) {
	MainIfChild(childEnv, testChild)
	os.Exit(m.Run())
}

// testChild serves fd 3: "echo" replies with its body, "fail" with an
// error, "garbage" writes a line that is no Msg and then the event
// "after", "log" logs its body, "die" exits at once, "stop" replies and
// returns.
func testChild(conn net.Conn) error {
	w, r := NewWriter(conn), NewReader(conn)
	log := w.Logger(slog.LevelInfo)
	for {
		m, err := r.Next()
		if err != nil {
			return err
		}
		switch m.Op {
		case "echo":
			w.Reply(m.ID, m.Body, nil)
		case "fail":
			w.Reply(m.ID, nil, errors.New("no such thing"))
		case "garbage":
			conn.Write([]byte("{not json\n"))
			w.Send("after", "still here")
			w.Reply(m.ID, nil, nil)
		case "log":
			log.With("from", "child").Warn(string(m.Body), "n", 7)
			w.Reply(m.ID, nil, nil)
		case "die":
			os.Exit(1)
		case "stop":
			w.Reply(m.ID, nil, nil)
			return nil
		}
	}
}

func start(t *testing.T, log *slog.Logger, onEvent func(Msg)) *Child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := Start(cmd, "the test child", log, onEvent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	return c
}

func call(t *testing.T, c *Child, op string, body, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Call(ctx, op, body, out)
}

// TestRoundTrip: a request's body comes back decoded; an error the child
// answers with is a *ReplyError with its text; stop ends the child.
func TestRoundTrip(t *testing.T) {
	c := start(t, nil, nil)
	type body struct {
		A string `json:"a"`
		N []int  `json:"n"`
	}
	var got body
	if err := call(t, c, "echo", body{"x", []int{1, 2}}, &got); err != nil || got.A != "x" || len(got.N) != 2 {
		t.Fatalf("echo: %+v, %v", got, err)
	}
	var re *ReplyError
	if err := call(t, c, "fail", nil, nil); !errors.As(err, &re) || re.Msg != "no such thing" {
		t.Fatalf("fail: %v, want the child's error as a *ReplyError", err)
	}
	if err := call(t, c, "stop", nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not exit after stop")
	}
}

// TestMalformedLineCounted: a line that is no Msg is counted and skipped;
// the event after it and the reply still arrive.
func TestMalformedLineCounted(t *testing.T) {
	events := labtest.NewCollector[Msg]()
	c := start(t, nil, events.Add)
	if err := call(t, c, "garbage", nil, nil); err != nil {
		t.Fatal(err)
	}
	if m := events.Next(t, 10*time.Second); m.Op != "after" || string(m.Body) != `"still here"` {
		t.Errorf("event %+v, want after", m)
	}
	if n := c.Malformed(); n != 1 {
		t.Errorf("Malformed() = %d, want 1", n)
	}
	if err := call(t, c, "echo", "again", nil); err != nil {
		t.Errorf("the connection did not survive the bad line: %v", err)
	}
}

// TestChildDeath: a child that dies fails the call waiting on it and
// closes Gone and Exited, which is what its parent restarts it on.
func TestChildDeath(t *testing.T) {
	c := start(t, nil, nil)
	err := call(t, c, "die", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "the test child exited") {
		t.Errorf("call to a dying child: %v", err)
	}
	for name, ch := range map[string]<-chan struct{}{"Gone": c.Gone(), "Exited": c.Exited()} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Errorf("%s not closed after the child died", name)
		}
	}
	// A second child starts as the first did.
	if err := call(t, start(t, nil, nil), "echo", 1, nil); err != nil {
		t.Errorf("a new child: %v", err)
	}
}

// TestLogForwarded: the child's log records reach the parent's logger
// with their level, message and attributes.
func TestLogForwarded(t *testing.T) {
	buf := &labtest.Buffer{}
	c := start(t, slog.New(slog.NewTextHandler(buf, nil)), nil)
	if err := call(t, c, "log", "hello", nil); err != nil {
		t.Fatal(err)
	}
	labtest.WaitFor(t, 10*time.Second, "the log line", func() bool { return strings.Contains(buf.String(), "hello") })
	if got := buf.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "from=child") || !strings.Contains(got, "n=7") {
		t.Errorf("logged %q, want WARN with from=child n=7", got)
	}
}

// TestReaderSkipsBadLines: Reader alone, on a stream with a bad line
// between two good ones and no final newline.
func TestReaderSkipsBadLines(t *testing.T) {
	r := NewReader(strings.NewReader("{\"id\":1}\n[1,2]\n\n{\"op\":\"x\"}"))
	var got []Msg
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if len(got) != 2 || got[0].ID != 1 || got[1].Op != "x" {
		t.Errorf("read %+v", got)
	}
	if r.Malformed() != 2 {
		t.Errorf("Malformed() = %d, want 2 (the array and the empty line)", r.Malformed())
	}
}
