"""Publishing: the board pack (PDF) and the equity dashboard (static HTML), from the same content model.

model.py holds the sections as plain values, sections.py builds them from analyses (one function per section),
figures.py draws the charts as SVG, render.py turns a Pack into PDF, one HTML file or a dashboard."""
