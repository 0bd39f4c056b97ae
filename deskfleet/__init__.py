"""The deskfleet command and the programs that drive DeskFleet as its clients do: the machine-runtime simulator and the demo."""
