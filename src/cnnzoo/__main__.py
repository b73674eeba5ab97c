from cnnzoo.cli import console_main

console_main()
