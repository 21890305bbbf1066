package main

func extraCommands() []command { return nil }
