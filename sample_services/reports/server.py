print("reports server placeholder")
