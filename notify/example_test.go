package notify_test

import (
	"fmt"
	"strings"

	"vigil/notify"
)

func ExampleEvent() {
	ev := notify.Event{Scope: notify.Instance, Name: "VI_1", State: notify.StateMaster, Priority: 100}
	fmt.Println(ev.FifoLine())
	// The generic notify script gets these appended to its own arguments.
	fmt.Println(strings.Join(ev.Args(), " "))
	// Output:
	// INSTANCE "VI_1" MASTER 100
	// INSTANCE VI_1 MASTER 100
}
