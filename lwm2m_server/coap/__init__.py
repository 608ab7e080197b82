"""coap"""
