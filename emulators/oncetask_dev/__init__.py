"""Development only: the whole system on one machine (`oncetask dev`), the demo (`oncetask demo`) and the CLI.

Never deployed and never imported from functions/.
"""
