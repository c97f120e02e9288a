<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all" xmlns:err="http://www.w3.org/2005/xqt-errors">
  <!-- xsl:try / xsl:catch around conversions of bad input values; error codes reported. -->
  <xsl:template match="/">
    <r>
      <xsl:for-each select="('12.50', '1.234,56', 'abc', '', '7')">
        <xsl:try>
          <ok wert="{xs:decimal(.) * 2}"/>
          <xsl:catch errors="err:FORG0001">
            <fehler code="{local-name-from-QName($err:code)}" eingabe="{.}"/>
          </xsl:catch>
        </xsl:try>
      </xsl:for-each>
      <xsl:try select="error(QName('urn:drehscheibe:test:f', 'f:E1'), 'Pflichtfeld fehlt')">
        <xsl:catch><eigener code="{$err:code}" ns="{namespace-uri-from-QName($err:code)}" text="{$err:description}"/></xsl:catch>
      </xsl:try>
      <castable><xsl:value-of select="('1', '1.5', 'x', '1e3') ! (. castable as xs:integer)"/></castable>
    </r>
  </xsl:template>
</xsl:stylesheet>
