package config

// Word is one token of a logical line, with double quotes removed.
type Word struct {
	Text   string
	Pos    Pos
	Quoted bool // the word was written in double quotes
}

// Node is one keyword line of a keepalived configuration after
// preprocessing, and the block it opened, if any.
//
// For `virtual_server 192.0.2.1 80 {` Key is "virtual_server", Args are
// "192.0.2.1" and "80", HasBlock is true and Block holds the lines up to the
// matching `}`. Inside list blocks such as virtual_ipaddress each item is a
// Node whose Key is the item's first word.
type Node struct {
	Key  Word
	Args []Word
	// Raw is the text after the keyword, before splitting into words,
	// comments removed and parameters substituted. Script-valued keywords
	// (script, notify*, misc_path, ...) split it with SplitCommand.
	Raw      string
	HasBlock bool
	Block    []*Node
	End      Pos // where the block's closing brace was
}
