"""`python -m introdl.grading.authoring LAB [MODE] ...`: the one calibration runner (make calibrate)."""

from introdl.grading.authoring.calibrate import main

raise SystemExit(main())
