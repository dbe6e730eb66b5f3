print("shop-web server placeholder")
