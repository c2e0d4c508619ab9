"""The PDF documents Anju issues: the household file (一户一档) and the completion acceptance
report (竣工验收报告).

render.py turns a template into a PDF (the stamp every page carries, the QR code, a URL
fetcher that reads only our own storage); mapsvg.py draws the household map as inline SVG;
household_file.py and acceptance.py are the builders named in reports.kinds.
"""
